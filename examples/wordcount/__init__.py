"""wordcount: the queue side of the messaging example -- counts words in stringsvc's events."""
