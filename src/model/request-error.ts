/** A malformed question (not a denial): unknown permission, folder missing or misplaced... */
export class RequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestError';
  }
}
