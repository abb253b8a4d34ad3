"""Tools beside the CLI: :mod:`.bench` (``python -m resnetlab bench``) and :mod:`.download`
(``python -m resnetlab download``). They use the library; nothing in it imports them."""
