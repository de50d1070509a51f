import { randomInt } from 'node:crypto';

// A short version of moby's namesgenerator: adjective_surname.
const left = [
  'admiring', 'agitated', 'amazing', 'blissful', 'bold', 'brave', 'busy', 'clever', 'cool', 'dazzling',
  'eager', 'elated', 'epic', 'festive', 'focused', 'friendly', 'gallant', 'happy', 'hopeful', 'jolly',
  'keen', 'kind', 'loving', 'lucid', 'modest', 'nice', 'nifty', 'optimistic', 'peaceful', 'quirky',
  'relaxed', 'serene', 'sharp', 'stoic', 'sweet', 'tender', 'trusting', 'upbeat', 'vibrant', 'zealous',
];
const right = [
  'albattani', 'babbage', 'bell', 'bohr', 'curie', 'darwin', 'dijkstra', 'einstein', 'euler', 'fermat',
  'feynman', 'galileo', 'gauss', 'hopper', 'hypatia', 'kepler', 'knuth', 'lamarr', 'lovelace', 'mayer',
  'meitner', 'newton', 'noether', 'pascal', 'planck', 'ritchie', 'shannon', 'tesla', 'thompson', 'turing',
  'wozniak', 'yonath', 'franklin', 'goldberg', 'hamilton', 'lamport', 'liskov', 'mcclintock', 'ride', 'wing',
];

export function generateName(retry: number): string {
  const name = `${left[randomInt(left.length)]}_${right[randomInt(right.length)]}`;
  return retry > 0 ? `${name}${randomInt(10)}` : name;
}

export const VALID_NAME = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
