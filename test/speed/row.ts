/** One line of the performance table: a measured figure beside its goal. */
export interface BenchRow {
  name: string;
  value: number;
  goal: string;
  ok: boolean;
  detail?: string;
}
