/** Every workflow the worker runs. One flow, one file. */
export { passwordReset } from './password-reset';
export { supportReview } from './support-review';
export { signUp } from './sign-up';
export { changePhone, changeEmail } from './change-contact';
