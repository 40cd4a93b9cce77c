// The parts of lz4js (pure-JavaScript LZ4) this package uses; the package ships no types. Only the block functions
// are used: lz4js's own frame writer marks blocks as dependent, which Kafka's Java reader refuses.
declare module 'lz4js' {
  export function compressBound(length: number): number;
  /** Compresses src[start, start + length) into dst from 0; returns the compressed length, 0 when nothing matched. */
  export function compressBlock(
    src: Uint8Array,
    dst: Uint8Array,
    start: number,
    length: number,
    hashTable: Uint32Array,
  ): number;
  /** Decodes the block src[start, start + length) into dst from `at`; returns the new end of dst. Checks nothing. */
  export function decompressBlock(src: Uint8Array, dst: Uint8Array, start: number, length: number, at: number): number;
}

declare module 'lz4js/xxh32.js' {
  /** xxHash32 of src[start, start + length); a signed 32-bit integer. */
  export function hash(seed: number, src: Uint8Array, start: number, length: number): number;
}
