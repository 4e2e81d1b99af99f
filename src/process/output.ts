/**
 * Capturing a command's output while it runs: the head of stdout, the tail
 * of stderr, bounded whatever the command prints.
 *
 * @module
 */

/** Something that takes the chunks of an output stream. */
interface Sink {
  /** Takes the next chunk. */
  push(chunk: Uint8Array): void;
}

/**
 * Reads `stream` to its end into `sink`. Never rejects: a read error ends the
 * output. It may go on after the command exited, while a background process
 * it started holds the pipe.
 */
export async function drain(stream: ReadableStream<Uint8Array>, sink: Sink): Promise<void> {
  const reader = stream.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) return;
      sink.push(value);
    }
  } catch {
    // the pipe broke: what was read is all there is
  } finally {
    reader.releaseLock();
  }
}

/** Keeps the first `limit` bytes and counts them all. */
export class Head implements Sink {
  #chunks: Uint8Array[] = [];
  #kept = 0;
  /** Bytes pushed, including those past the limit. */
  total = 0;

  /** Creates a head that keeps `limit` bytes. */
  constructor(readonly limit: number) {}

  /** Keeps what fits of `chunk` and counts all of it. */
  push(chunk: Uint8Array): void {
    this.total += chunk.length;
    if (this.#kept >= this.limit) return;
    const part = chunk.slice(0, this.limit - this.#kept);
    this.#chunks.push(part);
    this.#kept += part.length;
  }

  /** The bytes kept, decoded as UTF-8 (invalid bytes become U+FFFD). */
  text(): string {
    return decode(concat(this.#chunks));
  }
}

/** Keeps the last `limit` bytes and counts them all. */
export class Tail implements Sink {
  #chunks: Uint8Array[] = [];
  #kept = 0;
  /** Bytes pushed, including those no longer kept. */
  total = 0;

  /** Creates a tail that keeps `limit` bytes. */
  constructor(readonly limit: number) {}

  /** Keeps `chunk`, dropping the oldest chunks past the limit. */
  push(chunk: Uint8Array): void {
    this.total += chunk.length;
    this.#chunks.push(chunk);
    this.#kept += chunk.length;
    while (this.#kept - this.#chunks[0].length >= this.limit) {
      this.#kept -= this.#chunks.shift()!.length;
    }
  }

  /** The last `limit` bytes, decoded as UTF-8 from the first whole character. */
  text(): string {
    const all = concat(this.#chunks);
    return decode(skipContinuationBytes(all.subarray(Math.max(0, all.length - this.limit))));
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** Drops the UTF-8 continuation bytes a cut tail may start with (at most 3). */
function skipContinuationBytes(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < 3 && start < bytes.length && (bytes[start] & 0xc0) === 0x80) start++;
  return bytes.subarray(start);
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}
