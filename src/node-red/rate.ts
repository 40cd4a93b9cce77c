// Events per second for node status: counted on the hot path, read once a second.
export class RateMeter {
  count = 0;
  perSecond = 0;
  private last = Date.now();
  private lastCount = 0;

  /** Call about once a second; smooths over a few seconds so the status does not flicker. */
  tick(now = Date.now()): void {
    const seconds = (now - this.last) / 1000;
    if (seconds <= 0) return;
    const current = (this.count - this.lastCount) / seconds;
    this.perSecond = this.perSecond === 0 ? current : 0.5 * this.perSecond + 0.5 * current;
    if (current === 0 && this.perSecond < 1) this.perSecond = 0;
    this.last = now;
    this.lastCount = this.count;
  }
}
