// The workflows a worker registers.
export { changeRequest } from './change-request';
