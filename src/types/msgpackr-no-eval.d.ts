// msgpackr's pure-JS "no-eval" build ships without its own typings: it is the main entry's API.
declare module 'msgpackr/index-no-eval' {
  export * from 'msgpackr';
}
