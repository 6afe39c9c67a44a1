"""clearhouse.disputes"""
