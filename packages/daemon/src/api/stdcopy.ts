/** Stream numbers of the multiplexed stream (moby pkg/stdcopy). */
export const StdStream = { stdin: 0, stdout: 1, stderr: 2, systemerr: 3 } as const;
export type StdStreamName = 'stdin' | 'stdout' | 'stderr' | 'systemerr';

/** One frame: `[type,0,0,0,size_be32]` then the payload. */
export function frame(stream: StdStreamName, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header[0] = StdStream[stream];
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** Parses frames from a buffer; returns the frames and the unparsed rest (for tests and the exec/attach readers). */
export function parseFrames(data: Buffer): { frames: { stream: number; payload: Buffer }[]; rest: Buffer } {
  const frames: { stream: number; payload: Buffer }[] = [];
  let offset = 0;
  while (data.length - offset >= 8) {
    const size = data.readUInt32BE(offset + 4);
    if (data.length - offset - 8 < size) break;
    frames.push({ stream: data[offset]!, payload: data.subarray(offset + 8, offset + 8 + size) });
    offset += 8 + size;
  }
  return { frames, rest: data.subarray(offset) };
}
