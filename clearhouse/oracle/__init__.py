"""clearhouse.oracle"""
