/**
 * What a test must undo, whatever happens: `defer` registers an undo step as resources are made, and
 * `runAll` (in `afterEach`) runs them newest first — every one of them, even when some fail — and then
 * reports every failure at once.
 */
export class CleanupStack {
  private readonly steps: (() => Promise<unknown>)[] = [];

  defer(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }

  async runAll(): Promise<void> {
    const problems: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        problems.push(error);
      }
    }
    if (problems.length > 0) throw new Error(`cleanup failed: ${problems.map(String).join('; ')}`);
  }
}
