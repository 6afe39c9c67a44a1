"""clearhouse.sim"""
