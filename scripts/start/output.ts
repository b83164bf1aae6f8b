/** Receives one line a process wrote, with the name of the process. */
export type LineSink = (source: string, stream: 'stdout' | 'stderr', line: string) => void;

// cyan, magenta, yellow, green, blue, bright red, bright cyan, bright magenta
const PALETTE = [36, 35, 33, 32, 34, 91, 96, 95];
const START_COLOUR = 90;

/**
 * The terminal side of `npm start`: every line is prefixed with `[source] ` so the interleaved output
 * of several processes stays readable, and the rest of the line is left as written (JSON log lines
 * stay parseable after the tag). Tags are coloured only when the stream is a terminal.
 */
export class TaggedOutput {
  private readonly colours = new Map<string, number>();

  /** Writes a line a child process wrote, under its tag, to the same stream it used. */
  readonly line: LineSink = (source, stream, line) => {
    const target = stream === 'stderr' ? process.stderr : process.stdout;
    target.write(`${this.tag(source, target)} ${line}\n`);
  };

  /** Writes a message of `npm start` itself, tagged `[start]`. */
  notice(message: string): void {
    process.stdout.write(`${this.tag('start', process.stdout)} ${message}\n`);
  }

  /** Writes a problem of `npm start` itself to stderr, tagged `[start]`. */
  problem(message: string): void {
    process.stderr.write(`${this.tag('start', process.stderr)} ${message}\n`);
  }

  /** Writes lines as they are, without a tag (the summary block). */
  block(lines: string[]): void {
    process.stdout.write(`${lines.join('\n')}\n`);
  }

  /** `text` in bold when stdout is a terminal. */
  bold(text: string): string {
    return colourful(process.stdout) ? `\x1b[1m${text}\x1b[0m` : text;
  }

  private tag(source: string, target: NodeJS.WriteStream): string {
    const text = `[${source}]`;
    if (!colourful(target)) return text;
    let colour = source === 'start' ? START_COLOUR : this.colours.get(source);
    if (colour === undefined) {
      colour = PALETTE[this.colours.size % PALETTE.length];
      this.colours.set(source, colour);
    }
    return `\x1b[${colour}m${text}\x1b[0m`;
  }
}

function colourful(stream: NodeJS.WriteStream): boolean {
  return stream.isTTY === true && !process.env.NO_COLOR;
}
