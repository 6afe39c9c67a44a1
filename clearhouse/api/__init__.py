"""clearhouse.api"""
