"""clearhouse.market"""
