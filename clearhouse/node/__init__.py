"""clearhouse.node"""
