
BlogitJdL[¾