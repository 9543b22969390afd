# drop-dns: parse Ethernet / IPv4 / UDP and drop DNS queries.
# r1 = packet data, r2 = packet length (the `bpfkit run` convention).
# Returns 1 (XDP_DROP) for UDP to port 53, 2 (XDP_PASS) for everything else.
        r3 = r1
        r3 += r2                        # r3 = data_end
        r4 = r1
        r4 += 0x22                      # Ethernet (14) + minimal IPv4 header (20)
        if r4 > r3 goto pass
        w5 = *(u16 *)(r1 + 0xc)         # EtherType, network byte order
        if w5 != 0x8 goto pass          # 0x0800 (IPv4) read little-endian
        w5 = *(u8 *)(r1 + 0x17)         # IPv4 protocol
        if w5 != 0x11 goto pass         # UDP
        w5 = *(u8 *)(r1 + 0xe)          # version and header length
        w5 &= 0xf
        w5 <<= 0x2                      # header length in bytes
        r4 = r1
        r4 += 0xe
        r4 += r5                        # r4 = UDP header
        r6 = r4
        r6 += 0x8
        if r6 > r3 goto pass
        w5 = *(u16 *)(r4 + 0x2)         # destination port
        r5 = be16 r5
        if w5 != 0x35 goto pass         # 53
        r0 = 0x1
        exit
pass:
        r0 = 0x2
        exit
