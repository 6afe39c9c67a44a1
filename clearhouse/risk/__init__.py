"""clearhouse.risk"""
