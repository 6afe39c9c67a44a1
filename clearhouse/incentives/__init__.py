"""clearhouse.incentives"""
