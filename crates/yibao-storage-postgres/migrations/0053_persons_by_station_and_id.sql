-- The persons of a station in the order of their ID numbers: the unpaid list's export reads a
-- batch along this index from its cursor on (station, then ID number) and stops, where the old
-- index of region and station alone left each batch to read and sort the station's or region's
-- whole list again. It serves everything the old one did (its columns are this one's first two).
CREATE INDEX persons_by_station_and_id ON persons (region_code, station_code, id_number);
DROP INDEX persons_by_station;
