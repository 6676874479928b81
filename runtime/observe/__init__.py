"""Derived, disposable views over a lab database: health, and (to come) failure clusters
and severity. They read; anything they keep can be thrown away and computed again."""
