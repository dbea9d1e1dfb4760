"""Catalog (TMF620): product specifications, plans with windowed prices, allowances, VAS top-ups,
and the product-to-service mapping that service ordering decomposes."""
