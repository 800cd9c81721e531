"""FURS fiscal verification: ZOI, QR data, JWS-signed requests and the HTTPS client."""
