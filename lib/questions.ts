/** The security-question catalogue. Answers are normalised (case, spacing, accents) before hashing. */
export const SECURITY_QUESTIONS = [
  { id: 'q-first-pet', text: 'What was the name of your first pet?' },
  { id: 'q-birth-city', text: 'In which city were you born?' },
  { id: 'q-first-school', text: 'What was the name of your first school?' },
  { id: 'q-childhood-friend', text: 'What is the first name of your childhood best friend?' },
  { id: 'q-first-phone', text: 'What was the model of your first mobile phone?' },
  { id: 'q-favourite-teacher', text: 'What was the surname of your favourite teacher?' },
  { id: 'q-parents-meet', text: 'In which city did your parents meet?' },
] as const;

export type QuestionId = (typeof SECURITY_QUESTIONS)[number]['id'];

export function normalizeAnswer(answer: string): string {
  return answer
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .trim();
}
