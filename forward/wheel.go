package forward

// wheel is a hashed timing wheel: a timer sits in the slot of its tick
// (when / tick, modulo the number of slots); advancing the wheel visits
// the slots of the ticks that passed and fires their due timers, leaving
// those due a turn or more later where they are. Adding and removing a
// timer cost a few pointer writes, which suits a timeout per connection
// that is set once and is rarely due. It is not safe for concurrent use:
// each event loop has its own.
type wheel[T any] struct {
	tick  int64 // nanoseconds
	slots []*timer[T]
	cur   int64 // the last tick wholly past and advanced over
	n     int   // timers queued
}

// timer is one entry of a wheel, embedded in what it times.
type timer[T any] struct {
	when       int64 // nanoseconds, on the wheel's clock
	slot       int   // -1: not queued
	prev, next *timer[T]
	v          T
}

// init sets the wheel up with slots of tick nanoseconds, starting at now.
func (w *wheel[T]) init(tick int64, slots int, now int64) {
	w.tick, w.slots, w.cur = tick, make([]*timer[T], slots), now/tick-1
}

// queued reports whether t waits in a wheel.
func (t *timer[T]) queued() bool { return t.slot >= 0 }

// add queues t for when, taking it off its old place first; a time that
// has passed fires at the next advance.
func (w *wheel[T]) add(t *timer[T], when int64) {
	if t.queued() {
		w.del(t)
	}
	t.when = when
	k := max(when/w.tick, w.cur+1)
	s := int(k % int64(len(w.slots)))
	t.slot, t.prev, t.next = s, nil, w.slots[s]
	if t.next != nil {
		t.next.prev = t
	}
	w.slots[s] = t
	w.n++
}

// del takes t off the wheel, if it is on it.
func (w *wheel[T]) del(t *timer[T]) {
	if !t.queued() {
		return
	}
	if t.prev == nil {
		w.slots[t.slot] = t.next
	} else {
		t.prev.next = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.slot, t.prev, t.next = -1, nil, nil
	w.n--
}

// wait is how long, in nanoseconds, until the next tick is wholly past;
// -1 when no timer is queued.
func (w *wheel[T]) wait(now int64) int64 {
	if w.n == 0 {
		return -1
	}
	return max((w.cur+2)*w.tick-now, 0)
}

// advance fires the timers of every tick wholly past by now (so a timer
// fires up to a tick late, never early), in no particular order; fire may
// add timers again, the one it was given too.
func (w *wheel[T]) advance(now int64, fire func(*timer[T])) {
	target := now/w.tick - 1
	if target-w.cur > int64(len(w.slots)) {
		w.cur = target - int64(len(w.slots)) // each slot once is enough
	}
	for w.cur < target {
		w.cur++
		s := int(w.cur % int64(len(w.slots)))
		t := w.slots[s]
		w.slots[s] = nil
		for t != nil {
			next := t.next
			w.n--
			t.slot, t.prev, t.next = -1, nil, nil
			if t.when <= now {
				fire(t)
			} else { // due a turn or more later: back in its slot
				t.slot, t.next = s, w.slots[s]
				if t.next != nil {
					t.next.prev = t
				}
				w.slots[s] = t
				w.n++
			}
			t = next
		}
	}
}
