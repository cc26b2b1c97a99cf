// Shared by the bench scripts: statistics and cleanup.

/** The q-quantile of xs (nearest rank), e.g. 0.99. */
export const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
};

/** The median (the mean of the two middle values for an even count). */
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs cleanup functions newest first; one that fails is reported and the rest still run. */
export async function stopAll(stoppers) {
  for (const stop of [...stoppers].reverse()) {
    try {
      await stop();
    } catch (err) {
      console.error(`bench cleanup: ${err.message}`);
    }
  }
}
