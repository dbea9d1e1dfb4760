"""Commercial order management (COM, TMF622): product orders, their items, the price snapshot taken
at order time and the promo intent; the order-to-activation workflow drives their states."""
