; A jump table written by hand: r1 points at a u64 selector; 0, 1, 2 -> 30, 10, 20, else 0.
; bpfkit run --asm examples/jump-table.s --mem "01 00 00 00 00 00 00 00"
r1 = *(u64 *)(r1 + 0)
r0 = 0
if r1 > 2 goto out
r1 <<= 3
r2 = jt ll
r2 += r1
r2 = *(u64 *)(r2 + 0)
gotox r2
a: r0 = 10
exit
b: r0 = 20
exit
c: r0 = 30
out: exit
.jumptable jt c, a, b
