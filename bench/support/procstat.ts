/**
 * CPU time and memory of a process group, read from /proc (Linux). A ManagedProcess's pid is also its
 * process group id, and tsx runs the real node process as a child in that group, so summing the group
 * covers both.
 */
import fs from 'node:fs';

const CLK_TCK = 100; // USER_HZ: 100 on every Linux we run on

export interface GroupSample {
  /** user+system CPU seconds of every live member plus what reaped children used. */
  cpuSeconds: number;
  /** Resident set size of all members now (MiB). */
  rssMiB: number;
  /** The largest member's own high-water RSS (VmHWM, MiB). */
  hwmMiB: number;
  pids: number[];
}

function readStat(pid: number): { pgrp: number; ppid: number; cpuTicks: number } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // rest[0]=state [1]=ppid [2]=pgrp ... [11]=utime [12]=stime [13]=cutime [14]=cstime
    return { ppid: Number(rest[1]), pgrp: Number(rest[2]), cpuTicks: Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14]) };
  } catch {
    return undefined;
  }
}

function readStatusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Members of process group `pgid`, plus descendants of its leader that moved to another group. */
export function groupPids(pgid: number): number[] {
  const all: { pid: number; ppid: number; pgrp: number }[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const s = readStat(Number(e));
    if (s) all.push({ pid: Number(e), ppid: s.ppid, pgrp: s.pgrp });
  }
  const members = new Set(all.filter((p) => p.pgrp === pgid).map((p) => p.pid));
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of all) {
      if (!members.has(p.pid) && members.has(p.ppid)) {
        members.add(p.pid);
        grew = true;
      }
    }
  }
  return [...members];
}

export function sampleGroup(pgid: number | undefined): GroupSample {
  if (!pgid) return { cpuSeconds: 0, rssMiB: 0, hwmMiB: 0, pids: [] };
  const pids = groupPids(pgid);
  let ticks = 0;
  let rss = 0;
  let hwm = 0;
  for (const pid of pids) {
    ticks += readStat(pid)?.cpuTicks ?? 0;
    rss += readStatusKiB(pid, 'VmRSS');
    hwm = Math.max(hwm, readStatusKiB(pid, 'VmHWM'));
  }
  return { cpuSeconds: ticks / CLK_TCK, rssMiB: rss / 1024, hwmMiB: hwm / 1024, pids };
}

/** The bench process itself (and no children). */
export function sampleSelf(): GroupSample {
  const u = process.cpuUsage();
  return { cpuSeconds: (u.user + u.system) / 1e6, rssMiB: process.memoryUsage().rss / 2 ** 20, hwmMiB: readStatusKiB(process.pid, 'VmHWM') / 1024, pids: [process.pid] };
}

/**
 * Watches named process groups while a phase runs: CPU used during the phase and peak RSS (sampled
 * every `intervalMs`, plus the kernel's own high-water mark).
 */
export class GroupMonitor {
  private readonly start = new Map<string, number>();
  private readonly peak = new Map<string, number>();
  private readonly last = new Map<string, GroupSample>();
  private timer?: NodeJS.Timeout;
  private readonly started = Date.now();

  constructor(
    private readonly groups: Record<string, () => number | undefined>,
    intervalMs = 250,
  ) {
    for (const [name, pid] of Object.entries(groups)) {
      const s = name === 'bench' ? sampleSelf() : sampleGroup(pid());
      this.start.set(name, s.cpuSeconds);
      this.peak.set(name, s.rssMiB);
      this.last.set(name, s);
    }
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
  }

  private tick(): void {
    for (const [name, pid] of Object.entries(this.groups)) {
      const s = name === 'bench' ? sampleSelf() : sampleGroup(pid());
      if (!s.pids.length) continue;
      this.peak.set(name, Math.max(this.peak.get(name) ?? 0, s.rssMiB));
      this.last.set(name, s);
    }
  }

  /** Stops sampling; per group: CPU seconds used, CPU share of one core, peak and current RSS. */
  stop(): Record<string, { cpuSeconds: number; cpuPercent: number; peakRssMiB: number; rssMiB: number; hwmMiB: number }> {
    this.tick();
    clearInterval(this.timer);
    const wall = (Date.now() - this.started) / 1000;
    const out: Record<string, { cpuSeconds: number; cpuPercent: number; peakRssMiB: number; rssMiB: number; hwmMiB: number }> = {};
    for (const name of Object.keys(this.groups)) {
      const last = this.last.get(name)!;
      const cpu = Math.max(0, last.cpuSeconds - (this.start.get(name) ?? 0));
      out[name] = { cpuSeconds: cpu, cpuPercent: wall > 0 ? (100 * cpu) / wall : 0, peakRssMiB: Math.max(this.peak.get(name) ?? 0, 0), rssMiB: last.rssMiB, hwmMiB: last.hwmMiB };
    }
    return out;
  }
}
