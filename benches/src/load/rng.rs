//! A small random number generator (xorshift64): which room gets the next message, who in it
//! posts, which page a reader asks for, and bytes that do not compress. Not for secrets.

/// xorshift64 (Marsaglia): fast, and random enough to spread load.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The sequence that starts at `seed` (zero, which xorshift cannot leave, becomes one).
    pub fn seeded(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// A sequence that differs from run to run.
    pub fn from_entropy() -> Self {
        Self::seeded(uuid::Uuid::new_v4().as_u64_pair().0)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n` > 0), by multiply-shift: no modulo bias worth the name.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_in_range() {
        let mut rng = Rng::seeded(0);
        for _ in 0..10_000 {
            assert!(rng.below(7) < 7);
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
