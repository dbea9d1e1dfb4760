"""Provisioning: the fault-injection rules behind the simulated network elements (HLR, PCRF, OCS, SM-DP+)."""
