// Meta-training particles: one inner training run each (an antithetic pair of population members
// shares it), restarted with a new task seed and length when its episode ends. Everything a
// particle draws is a function of (estimator seed, particle, episode), so no RNG state needs to
// be carried or checkpointed, and every worker computes the same draws.
import { Rng } from '../random/rng.js';

/** Inner-episode lengths: fixed, or log-uniform between min and max (μLO: 100…1000). */
export type EpisodeLength = { kind: 'fixed'; steps: number } | { kind: 'log-uniform'; min: number; max: number };

/** Where one particle is: JSON, carried by the estimator and its checkpoint. */
export interface ParticleState {
  /** Index of the current episode (0 for the first). */
  episode: number;
  /** Inner steps done in the current episode. */
  step: number;
  /** Length of the current episode; the particle restarts when step reaches it. */
  length: number;
}

/** The seeds a particle uses for one episode. */
export interface EpisodeSeeds {
  /** Seed of the inner parameters' initialization. */
  initSeed: number;
  /** Base seed of the episode's training batches. */
  dataSeed: number;
}

/** The stream of particle `particle` of the estimator whose stream is `root`. */
function particleRng(root: string, particle: number): Rng {
  return new Rng(root).fork(`particle-${particle}`);
}

const episodeRng = (root: string, particle: number, episode: number) => particleRng(root, particle).fork(`episode-${episode}`);

export function episodeSeeds(root: string, particle: number, episode: number): EpisodeSeeds {
  const rng = episodeRng(root, particle, episode);
  return { initSeed: rng.fork('init').seedInt(), dataSeed: rng.fork('data').seedInt() };
}

export function episodeLength(root: string, particle: number, episode: number, lengths: EpisodeLength): number {
  if (lengths.kind === 'fixed') return lengths.steps;
  return Math.max(1, Math.round(episodeRng(root, particle, episode).fork('length').logUniform(lengths.min, lengths.max)));
}

/**
 * The first state of every particle. With `initialOffset` > 0 particle i starts its first episode
 * at a uniform step in [0, initialOffset) of it, so particles do not all restart together (the
 * reference's random_initial_iteration_offset): the first episode is shortened, never lengthened.
 */
export function initialParticles(root: string, count: number, lengths: EpisodeLength, initialOffset: number): ParticleState[] {
  return Array.from({ length: count }, (_, i) => {
    const length = episodeLength(root, i, 0, lengths);
    const offset = initialOffset > 0 ? particleRng(root, i).fork('offset').int(initialOffset) : 0;
    return { episode: 0, step: Math.min(offset, length - 1), length };
  });
}

/**
 * Every particle moves to a new episode (a new task was drawn for it), starting at a uniform step
 * in [0, offset) of it, as initialParticles does for the first.
 */
export function restartedParticles(root: string, current: readonly ParticleState[], lengths: EpisodeLength, initialOffset: number): ParticleState[] {
  return current.map((p, i) => {
    const episode = p.episode + 1;
    const length = episodeLength(root, i, episode, lengths);
    const offset = initialOffset > 0 ? particleRng(root, i).fork(`offset-${episode}`).int(initialOffset) : 0;
    return { episode, step: Math.min(offset, length - 1), length };
  });
}

/** Seed of the batches a particle reads in a truncation that starts at `step` of `episode`. */
export function truncationDataSeed(root: string, particle: number, state: ParticleState): number {
  const { dataSeed } = episodeSeeds(root, particle, state.episode);
  return new Rng(String(dataSeed)).fork(`step-${state.step}`).seedInt();
}
