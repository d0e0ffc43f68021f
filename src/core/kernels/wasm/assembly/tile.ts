// The micro-tile shared by packing and the micro-kernel: rows of C per tile (the broadcast
// operand A) and columns (the vector operand B, two v128 per row).

export const MR: i32 = 4;
export const NR: i32 = 8;
