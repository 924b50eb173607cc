"""The end-to-end Zuul: real ZooKeeper, PostgreSQL, Zuul and the executor as the kit renders it."""
