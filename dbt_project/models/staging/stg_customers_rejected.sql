with

source as (

    select * from {{ source('raw', 'customers_rejected') }}

),

renamed as (

    select
        source_row_number,
        source_line_number,
        source_line,
        load_error

    from source

)

select * from renamed
