
BlogitJzPO<