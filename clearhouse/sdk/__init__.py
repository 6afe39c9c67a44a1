"""clearhouse.sdk"""
