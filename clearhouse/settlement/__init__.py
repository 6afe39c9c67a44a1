"""clearhouse.settlement"""
