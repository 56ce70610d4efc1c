
BlogitJooZ¾