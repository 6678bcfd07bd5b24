"""sessiondb"""
