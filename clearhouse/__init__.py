"""clearhouse: an off-chain coordination network for crypto options.

Parties agree off-chain with EIP-712 signed messages; Vyper contracts hold collateral, verify
compact batch commitments and let any honest watcher prove a bad batch. See docs/architecture.md.
"""

__version__ = "0.1.0"
