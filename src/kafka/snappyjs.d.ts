// The two functions of snappyjs (pure-JavaScript Snappy) this package uses; the package ships no types.
declare module 'snappyjs' {
  export function compress(input: Buffer): Buffer;
  export function uncompress(input: Buffer, maxLength?: number): Buffer;
}
