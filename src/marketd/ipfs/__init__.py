"""Content addressing for discussion snapshots.

Everything IPFS-shaped that marketd needs, computed locally so that no remote party has to be
trusted: UnixFS file DAGs built exactly as ``ipfs add`` builds them (``builder``), CIDs
(``cid``), CAR files (``car``), the blockstores that hold content (``local``, ``kubo``,
``pinning_service``, ``multi``) and verified retrieval from HTTP gateways (``gateway``).
"""
