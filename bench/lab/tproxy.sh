# bench/lab/tproxy.sh — sourced by the floor and dnsdist SUTs (not by tproxy-relay, which installs
# its own): TPROXY of UDP 53 arriving on lan0 to a local listener, and the policy route that
# delivers marked packets locally. Runs inside the rtr namespace; bench/lab/lab.sh reset-rtr
# removes it all after the run.
install_tproxy() { # ADDR:PORT of the listener
	nft -f - <<NFT
table ip tb_sut {
	chain prerouting {
		type filter hook prerouting priority mangle; policy accept;
		iifname "lan0" udp dport 53 tproxy to $1 meta mark set 0x53 accept
		iifname "lan0" tcp dport 53 tproxy to $1 meta mark set 0x53 accept
	}
}
NFT
	ip rule add fwmark 0x53 lookup 153 priority 153
	ip route add local 0.0.0.0/0 dev lo table 153
}
