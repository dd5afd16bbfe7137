DROP TABLE consulting_bookings;
