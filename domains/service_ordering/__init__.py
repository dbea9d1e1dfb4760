"""Service order management (SOM, TMF641/TMF638): a product order decomposed into a customer-facing
MobileBroadband service over Data and Voice resource-facing services, and the network provisioning
tasks the service order workflow runs against them."""
