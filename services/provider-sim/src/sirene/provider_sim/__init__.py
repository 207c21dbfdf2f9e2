"""Sirene provider simulator: Twilio-compatible SMS/voice API and an APNs HTTP/2 server.

Development and test tool only; never deployed to production.
"""
