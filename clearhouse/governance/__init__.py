"""clearhouse.governance"""
