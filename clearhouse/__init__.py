"""clearhouse: an off-chain coordination network for crypto options.

Parties agree off-chain with EIP-712 signed messages; Vyper contracts hold collateral, verify
compact batch commitments and let any honest watcher prove a bad batch. See docs/architecture.md.
"""

from clearhouse._native import install as _install_native

__version__ = "0.1.0"

_install_native()  # the compiled book and risk check, if built from the sources as they are now
