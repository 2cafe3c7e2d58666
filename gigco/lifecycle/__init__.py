"""The domain: transitions, steps, matching, pricing, payments and timers over a Session."""
