// Cheap approximations for hot paths where only a rough size matters (shares of a score between attributes).

const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);
const HIGH = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

/** -ln(p) for 0 < p <= 1, within about 0.06 (exponent plus linear mantissa); 0 for p >= 1. */
export function surprise(p: number): number {
  if (!(p < 1)) return 0;
  F64[0] = p;
  const high = U32[HIGH];
  const log2 = (high >>> 20) - 1023 + (high & 0xfffff) / 0x100000;
  return -log2 * Math.LN2;
}
